"""Analysis tools behind the ``detforge`` analysis subcommands (v2's ``tools/analysis_tools``)."""
