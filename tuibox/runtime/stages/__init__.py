"""Creation stages: `base.py` says what a stage is, `order.py` lists them in the one order
they run. Nothing is imported here, so importing `stages.base` from a stage module costs
nothing and cannot close an import cycle."""
