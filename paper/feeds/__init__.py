"""Market-data feeds for the paper-trading loop: the protocol (`base`), recorded bars (`replay`), ccxt (`kraken`)."""

from paper.feeds.base import BarBatch, Feed, FeedDown

__all__ = ["BarBatch", "Feed", "FeedDown"]
