"""Serving: the FastAPI prediction service, model registry with A/B routing, feature spec.

``adsim serve RUN_DIR [RUN_DIR …]`` runs :func:`adsim.serving.app.create_app` under uvicorn;
``adsim predict RUN_DIR --input rows.parquet --output scored.parquet`` scores a table offline.
Submodules are imported on demand (FastAPI and torch are not imported by ``import adsim``).
"""
