"""confab for Python: the pytest plugin (``pytest --confab-spec api.toml``) and the JSON
report model. The ``confab`` executable itself is installed by the same wheel (confab-llm).
"""

from .report import Finding, Report, severity_rank
from .runner import ConfabError, ConfabNotFound, find_confab

__all__ = ["ConfabError", "ConfabNotFound", "Finding", "Report", "find_confab", "severity_rank"]
