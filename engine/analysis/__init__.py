"""Proofs about rules (SPEC §13): ``rulesvc verify`` and ``rulesvc diff --prove``.

The stages, in the order a proof runs through them (the split of Cedar's symbolic compiler):

- :mod:`~engine.analysis.values` — the symbolic values: a scalar (present?, term), an object, a list;
- :mod:`~engine.analysis.inputs` — the symbolizer and the enforcer: every declared fact, ``now`` and each
  stored count becomes solver variables, bounded as the declarations bound a valid request;
- :mod:`~engine.analysis.terms` — the compiler: rule-language expressions become solver terms, with the
  interpreter's semantics for values and durable_rules' for conditions;
- :mod:`~engine.analysis.decision` — one decision as formulas: which rules fire, the outcome, reasons,
  obligations and output values, the places evaluation can fail, the invariants;
- :mod:`~engine.analysis.concretize` — a solver model becomes a request: facts, ``now``, counters;
- :mod:`~engine.analysis.verify` — one function per property; every witness is run through the
  service's own decision path before it is reported.

What the encoding cannot express exactly is either an over-approximation (a free value: proofs stay
sound, and a witness that depended on it fails its check) or reported as ``unknown`` at its
``FILE:LINE:COL`` — never as proved.
"""
