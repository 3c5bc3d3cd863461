"""Account overlaps from account-mapping tools: import and match them to the org's accounts,
turn one into a registered deal, and measure how fast overlaps become approved registrations."""

from connector.overlaps.book import ImportResult, OverlapBook, OverlapError
from connector.overlaps.pipeline import PipelineRow, pipeline_report
from connector.overlaps.source import OverlapFileError, read_overlaps

__all__ = ["ImportResult", "OverlapBook", "OverlapError", "OverlapFileError", "PipelineRow", "pipeline_report",
           "read_overlaps"]
