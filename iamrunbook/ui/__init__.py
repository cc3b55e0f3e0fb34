"""The live front end: ipywidgets (the role matrix editor, the two-step confirm, the review widget) and the
notebook start-up that plugs them into the flows in a live session.
"""

from iamrunbook.ui.start import start

__all__ = ["start"]
