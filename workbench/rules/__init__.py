"""Rules turn analyzed inputs into findings: evidence, an estimated gain and a fix."""

from workbench.rules.finding import Finding, Fix
from workbench.rules.registry import RULES, Rule, rule, run_rules

__all__ = ["Finding", "Fix", "RULES", "Rule", "rule", "run_rules"]
