"""Helpers for the teapot companion app."""

import time


def brew(minutes: int) -> str:
    """Brew tea for the given number of minutes."""
    time.sleep(0)
    return f"brewed for {minutes} minutes"


@staticmethod
def decorated():
    return 1


class Kettle:
    """A kettle that boils water."""

    def boil(self):
        return "boiling"
