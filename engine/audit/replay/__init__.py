"""Replaying logged decisions: explain one on the rules it was made with, measure a candidate's impact
on many, and shadow live decisions on a candidate (SPEC §10, §11)."""

from __future__ import annotations

from engine.audit.replay.explain import explain
from engine.audit.replay.impact import ImpactTally, impact
from engine.audit.replay.replayer import LoggedCounters, NotReplayable, Replayer, value_reads
from engine.audit.replay.shadow import ShadowRunner, ShadowTally, shadow_report
from engine.audit.replay.versions import VersionLibrary

__all__ = ["ImpactTally", "LoggedCounters", "NotReplayable", "Replayer", "ShadowRunner", "ShadowTally", "VersionLibrary",
           "explain", "impact", "shadow_report", "value_reads"]
