"""Turning the paths a user names into analyzed inputs, whatever kind of artifact they are."""

from workbench.inputs.analyzed import AnalyzedInput, RankResult
from workbench.inputs.registry import AnalyzeOptions, analyze_path

__all__ = ["AnalyzeOptions", "AnalyzedInput", "RankResult", "analyze_path"]
