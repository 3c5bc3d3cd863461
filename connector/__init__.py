"""cosell-connector: a Salesforce-native, bidirectional sync connector for co-selling."""

__version__ = "0.1.0"
__all__ = ["__version__"]
