"""nnlab: neural networks on images and signals -- implement, train on real data, verify, look."""

__version__ = "0.1.0"
