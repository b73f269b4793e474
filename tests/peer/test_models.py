import pytest
import torch
from torch import nn
from torch.func import functional_call

from peer.tasks.layout import split_views
from peer.tasks.models import ConvNet, DenseNet, FlatModel, model_from_spec
from protocol.errors import ConfigError

GEN = torch.Generator().manual_seed(0)


def reference_module(model: FlatModel) -> nn.Module:
    """An independent torch.nn twin of ``model``, whose parameter names must match the layout."""
    if isinstance(model, ConvNet):

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv1, self.conv2 = nn.Conv2d(1, 8, 5), nn.Conv2d(8, 16, 5)
                self.fc1, self.fc2 = nn.Linear(256, 64), nn.Linear(64, model.num_classes)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                h = torch.max_pool2d(torch.relu(self.conv1(x.view(-1, 1, 28, 28))), 2)
                h = torch.max_pool2d(torch.relu(self.conv2(h)), 2)
                out: torch.Tensor = self.fc2(torch.relu(self.fc1(h.flatten(1))))
                return out

        return Net()
    assert isinstance(model, DenseNet)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(model.sizes, model.sizes[1:], strict=False)):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(model.sizes) - 2 else [])
    seq = nn.Sequential(*layers)
    names = [f"fc{j + 1}" for j in range(len(model.sizes) - 1)]
    linear = [m for m in seq if isinstance(m, nn.Linear)]

    class Dense(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for name, lin in zip(names, linear, strict=True):
                self.add_module(name, lin)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for i, name in enumerate(names):
                x = getattr(self, name)(x)
                x = torch.relu(x) if i < len(names) - 1 else x
            return x

    return Dense()


def reference_loss_and_grad(
    model: FlatModel, p: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    module = reference_module(model).to(p.dtype)
    p = p.detach().clone().requires_grad_(True)
    views = split_views(p.unsqueeze(0), model.layout)
    state = {name: v[0] for (name, _, _), v in zip(model.layout, views, strict=True)}
    assert set(state) == {n for n, _ in module.named_parameters()}
    loss = nn.functional.cross_entropy(functional_call(module, state, (x,)), y)
    (grad,) = torch.autograd.grad(loss, p)
    return loss.detach(), grad


def batch(model: FlatModel, n: int, b: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    params = torch.stack([model.init(seed=s) for s in range(n)]).to(dtype)
    params += 0.1 * torch.randn(params.shape, generator=GEN, dtype=dtype)  # break symmetry
    x = torch.randn(n, b, model.input_dim, generator=GEN, dtype=dtype)
    y = torch.randint(model.num_classes, (n, b), generator=GEN)
    return params, x, y


@pytest.mark.parametrize("spec", ["logreg", "mlp:hidden=16"])
def test_hand_written_gradients_match_autograd(spec: str) -> None:
    model = model_from_spec(spec, 12, 5)
    params, x, y = batch(model, 4, 9, torch.float64)
    loss, grad = model.loss_and_grad(params, x, y)
    assert loss.shape == (4,)
    assert grad.shape == params.shape
    for i in range(4):
        ref_loss, ref_grad = reference_loss_and_grad(model, params[i], x[i], y[i])
        torch.testing.assert_close(loss[i], ref_loss, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(grad[i], ref_grad, rtol=1e-10, atol=1e-13)
        one_loss, one_grad = model.loss_and_grad(params[i], x[i], y[i])
        assert one_loss.dim() == 0
        assert one_grad.shape == (model.num_params,)
        torch.testing.assert_close(one_grad, ref_grad, rtol=1e-10, atol=1e-13)
    out = torch.full_like(params, float("nan"))
    _, written = model.loss_and_grad(params, x, y, out=out)
    assert written.data_ptr() == out.data_ptr()
    assert torch.equal(out, grad)


def test_cnn_matches_autograd_and_batched_equals_per_peer() -> None:
    model = model_from_spec("cnn", 784, 10)
    params, x, y = batch(model, 3, 4, torch.float64)
    loss, grad = model.loss_and_grad(params, x, y)
    logits = model.forward(params, x)
    for i in range(3):
        ref_loss, ref_grad = reference_loss_and_grad(model, params[i], x[i], y[i])
        torch.testing.assert_close(loss[i], ref_loss, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(grad[i], ref_grad, rtol=1e-9, atol=1e-12)
        _one_loss, one_grad = model.loss_and_grad(params[i], x[i], y[i])
        torch.testing.assert_close(one_grad, grad[i], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(model.forward(params[i], x[i]), logits[i])


@pytest.mark.parametrize("spec", ["logreg", "mlp:hidden=8", "cnn"])
def test_sgd_step_is_params_minus_lr_grad_and_lr_zero_freezes(spec: str) -> None:
    model = model_from_spec(spec, 784, 3)
    params, x, y = batch(model, 3, 5, torch.float64)
    loss, grad = model.loss_and_grad(params, x, y)
    lr = torch.tensor([0.1, 0.0, 0.5], dtype=torch.float64)
    stepped = params.clone()
    step_loss = model.sgd_step(stepped, x, y, lr)
    torch.testing.assert_close(step_loss, loss)
    torch.testing.assert_close(stepped, params - lr[:, None] * grad, rtol=1e-10, atol=1e-12)
    assert torch.equal(stepped[1], params[1])


@pytest.mark.parametrize("spec", ["logreg", "mlp", "cnn"])
def test_shared_inputs_equal_expanded_inputs(spec: str) -> None:
    model = model_from_spec(spec, 784, 10)
    params, x, _ = batch(model, 3, 6, torch.float64)
    shared = x[0]
    expected = model.forward(params, shared.expand(3, -1, -1))
    torch.testing.assert_close(model.forward(params, shared), expected, rtol=1e-10, atol=1e-12)


def test_init_is_deterministic_and_pytorch_like() -> None:
    model = model_from_spec("mlp", 784, 10)
    a, b, c = model.init(seed=1), model.init(seed=1), model.init(seed=2)
    assert a.dtype == torch.float32
    assert a.shape == (784 * 64 + 64 + 64 * 10 + 10,)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    w1, b1, w2, _ = (v[0] for v in split_views(a.unsqueeze(0), model.layout))
    assert float(w1.abs().max()) <= 784**-0.5
    assert float(b1.abs().max()) <= 784**-0.5
    assert float(w2.abs().max()) <= 64**-0.5
    assert float(w1.std()) == pytest.approx(784**-0.5 / 3**0.5, rel=0.02)  # U(-b, b)


def test_layout_matches_torch_names_and_shapes() -> None:
    assert model_from_spec("mlp:hidden=32", 60, 10).layout == (
        ("fc1.weight", (32, 60), "float32"),
        ("fc1.bias", (32,), "float32"),
        ("fc2.weight", (10, 32), "float32"),
        ("fc2.bias", (10,), "float32"),
    )
    assert model_from_spec("cnn", 784, 10).num_params == sum(
        p.numel() for p in reference_module(model_from_spec("cnn", 784, 10)).parameters()
    )


@pytest.mark.parametrize(
    ("spec", "dim", "fragment"),
    [
        ("resnet", 784, "unknown model 'resnet'"),
        ("mlp:hidden=0", 784, "hidden must be a positive integer"),
        ("mlp:width=3", 784, "unknown parameter"),
        ("cnn", 60, "28x28"),
    ],
)
def test_bad_model_specs(spec: str, dim: int, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        model_from_spec(spec, dim, 10)


def test_shape_errors_are_config_errors() -> None:
    model = model_from_spec("logreg", 4, 2)
    with pytest.raises(ConfigError, match="needs 10"):
        model.forward(torch.zeros(9), torch.zeros(2, 4))
    with pytest.raises(ConfigError, match="expected params"):
        model.forward(torch.zeros(2, 10), torch.zeros(3, 2, 4))
