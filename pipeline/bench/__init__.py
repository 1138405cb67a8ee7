"""Benchmarks behind ``zhtopics bench <name>``: each module has ``add_arguments(parser)`` and
``run(args) -> int`` and prints numbers side by side; none is imported by a stage."""
