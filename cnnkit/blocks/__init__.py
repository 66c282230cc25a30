"""Building blocks: convolution and residual blocks (1D and 2D), the classifier head, shape formulas."""
from cnnkit.blocks.conv import ConvBlock, SqueezeExcite
from cnnkit.blocks.heads import ClassifierHead
from cnnkit.blocks.residual import ResidualBlock
from cnnkit.blocks.shapes import conv_output_size, pool_output_size

__all__ = [
    "ConvBlock",
    "SqueezeExcite",
    "ResidualBlock",
    "ClassifierHead",
    "conv_output_size",
    "pool_output_size",
]
