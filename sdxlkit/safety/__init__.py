"""safety.checkContent / safety.mode "fast": a local NSFW check of each result (see checker.py)."""

from .checker import (SAFETY_CHECKERS, SafetyChecker, SafetyModelMissing, checker_for, find_safety_checker, nsfw_flags,
                      wants_check)

__all__ = ["SAFETY_CHECKERS", "SafetyChecker", "SafetyModelMissing", "checker_for", "find_safety_checker",
           "nsfw_flags", "wants_check"]
