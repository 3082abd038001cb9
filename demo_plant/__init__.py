"""A small MES stand-in that the portal's deployment engine deploys to.

Standard library only. One HTTP process (``python -m demo_plant.server``) serves every demo
environment found under a root directory; each environment is a directory of its own::

    <root>/<SITE>/<TIER>/
        app/release.json   the running release: {"version", "label_delay_ms", "broken"}
        mes.sqlite3        the environment's own database: tables labels and cycles
        equipment.log      what was "pushed to the line PLC" (only written outside simulation)

The server reads ``release.json`` on every request, so a deployment that rewrites it takes
effect at once. The commands a deployment runs:

- ``python -m demo_plant.layout --root var/plant --sites BER,CHI,OPEN`` creates DEV/UAT/PROD.
- ``python -m demo_plant.artifacts --out DIR`` writes the good, bad and slow demo releases.
- ``python -m demo_plant.install --app-dir DIR`` applies ``$PCC_ARTIFACT_PATH`` (checked
  against ``$PCC_ARTIFACT_SHA256`` when set).
- ``python -m demo_plant.equipment --env-dir DIR --recipe NAME`` pushes a recipe, or only says
  it would when ``PCC_SIMULATION=1`` (E5: the portal decides; only PROD writes to equipment).
"""
