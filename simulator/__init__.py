"""Seeded, deterministic fleets of insured devices with labelled incidents.

- :mod:`simulator.signals` — what every model is built from: ``Span``, ``SampleIntervals``,
  ``Trace``, seeds (``rng_for``, ``child``), the local clock, AR(1) noise, lags, firmware rounding.
- :mod:`simulator.incidents` — ground truth (``Incident``) and the scenario framework
  (``Outcome``, ``Knob``, ``ScenarioSpec``) with the draw helpers scenarios are written with.
- :mod:`simulator.home`, :mod:`simulator.vehicle`, :mod:`simulator.equipment`,
  :mod:`simulator.coldchain` — one device kind each: its parameters and faults, its physics
  (``simulate_<kind>``), its scenarios and its quiet-device profiles.
- :mod:`simulator.scenarios` — the library assembled from the kinds: ``SCENARIOS`` (each with
  the ``knobs`` its replicas vary), ``QUIET_PROFILES``, ``simulate_quiet``.
- :mod:`simulator.fleet` — ``build_fleet``, ``standard_library``, ``demo_fleet`` and ``Fleet``.
- :mod:`simulator.wire` — MQTT payloads, contract-breaking garbage, replay files.
- :mod:`simulator.clock` — the compressed clock for live runs.

Pure except for the replay-file writer; publishing over MQTT lives elsewhere. Stands on
``core`` only (the contract, the risk catalogue, the time-zone rule).
"""
