"""Seeded, deterministic fleets of insured devices with labelled incidents.

- :mod:`simulator.devices` — physical models (vehicles, homes, equipment, cold chain).
- :mod:`simulator.scenarios` — the scenario library (``SCENARIOS``, each with the ``knobs`` its
  replicas vary) and ground truth (``Incident``).
- :mod:`simulator.fleet` — ``build_fleet``, ``standard_library``, ``demo_fleet`` and ``Fleet``.
- :mod:`simulator.wire` — MQTT payloads, contract-breaking garbage, replay files.
- :mod:`simulator.clock` — the compressed clock for live runs.

Pure except for the replay-file writer; publishing over MQTT lives elsewhere.
"""
