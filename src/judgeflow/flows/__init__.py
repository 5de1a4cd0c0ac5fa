"""The entry points: the distillation pipeline, judging a file, distilling a student, and the wiring they share."""
