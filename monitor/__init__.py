"""news-monitor: news monitoring and alerting daemon."""

__version__ = "0.1.0"
