"""The rumor peer daemon: MQTT transport, runtime loop, learner, tasks, config, checkpoints."""
