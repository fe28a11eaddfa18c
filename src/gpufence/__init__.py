"""gpufence: plan, audit and attest tenant isolation on multi-tenant GPU clusters."""

__version__ = "0.1.0"

__all__ = ["__version__"]
