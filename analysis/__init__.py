"""iapo-sim analysis: evaluation, deceiving prompts, sample complexity, figures, the CLI."""
