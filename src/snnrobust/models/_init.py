"""Weight initialisation shared by the hand-built families (as in the SR code)."""

from torch import nn


def init_weights(net: nn.Module) -> nn.Module:
    """Kaiming-normal (fan_out, ReLU) convs, BN weight 1 / bias 0, zero linear biases."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
    return net
