"""The paper's study as a pipeline: config, plan, Tables 1-10, figures, maps, report."""
