"""The rumor simulator: vectorised and reference engines, failure models, experiments, reports."""
