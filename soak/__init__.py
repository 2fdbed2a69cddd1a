"""The soak test (`make soak`, `python -m soak`): not part of `make test`, see `__main__`."""
