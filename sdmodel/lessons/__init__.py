"""Guided lessons: data files (assets/lessons/*.toml) that run step by step on the real
simulator, each step with an explanation, a UI focus and declarative checks.

- :mod:`.schema`: loading and validating lesson files (``load_lesson``, ``find_lesson``);
- :mod:`.checks`: the check kinds, one table (``CHECK_KINDS``);
- :mod:`.context`: what a step saw (its trace items, commands paired with responses);
- :mod:`.runner`: ``LessonRunner`` / ``run_lesson`` (headless, or behind the GUI);
- :mod:`.fields`: register fields for "explain this field";
- :mod:`.bus_faults`: a wrong CRC on the SD bus for one step;
- :mod:`.assets`: where the shipped lessons and captures are.
"""

from __future__ import annotations

from sdmodel.lessons.assets import AssetsError, assets_dir, captures_dir, lessons_dir
from sdmodel.lessons.checks import CHECK_KINDS, CheckKind, Param, ParamType
from sdmodel.lessons.context import Exchange, Source, StepContext
from sdmodel.lessons.fields import FieldError, FieldInfo, explain_field, field_refs, lookup_field
from sdmodel.lessons.runner import (
    CheckResult,
    LessonReport,
    LessonRunner,
    StepReport,
    run_lesson,
)
from sdmodel.lessons.schema import (
    Check,
    Focus,
    Lesson,
    LessonError,
    Step,
    find_lesson,
    load_lesson,
    load_lessons,
)

__all__ = [
    "AssetsError",
    "assets_dir",
    "captures_dir",
    "lessons_dir",
    "CHECK_KINDS",
    "CheckKind",
    "Param",
    "ParamType",
    "Exchange",
    "Source",
    "StepContext",
    "FieldError",
    "FieldInfo",
    "explain_field",
    "field_refs",
    "lookup_field",
    "CheckResult",
    "LessonReport",
    "LessonRunner",
    "StepReport",
    "run_lesson",
    "Check",
    "Focus",
    "Lesson",
    "LessonError",
    "Step",
    "find_lesson",
    "load_lesson",
    "load_lessons",
]
