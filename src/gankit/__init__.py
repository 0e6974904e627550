"""gankit: train, condition, translate and evaluate GANs."""
__version__ = "0.1.0"
