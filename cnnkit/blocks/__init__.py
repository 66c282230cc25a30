"""Building blocks: convolution and residual blocks (1D and 2D), the classifier head, the n-gram
linear branch of text models, shape formulas."""
from cnnkit.blocks.conv import ConvBlock, SqueezeExcite
from cnnkit.blocks.heads import ClassifierHead
from cnnkit.blocks.initializers import PartialIdentity
from cnnkit.blocks.ngrams import NaiveBayesLR, NgramLogits, SubwordEmbedding
from cnnkit.blocks.residual import ResidualBlock
from cnnkit.blocks.shapes import conv_output_size, pool_output_size
from cnnkit.blocks.whitening import PatchWhitening

__all__ = [
    "ConvBlock",
    "SqueezeExcite",
    "ResidualBlock",
    "ClassifierHead",
    "NgramLogits",
    "NaiveBayesLR",
    "SubwordEmbedding",
    "PatchWhitening",
    "PartialIdentity",
    "conv_output_size",
    "pool_output_size",
]
