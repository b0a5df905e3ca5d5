"""Runtime helpers shared by the book's chapters and the assignments.

One call at the top of every chapter::

    import dlcourse
    dlcourse.setup()          # seeds everything, configures the GPU if any, prints a device table

Data comes from :mod:`dlcourse.data` (offline ``small`` profile by default, ``full`` on a
networked kernel) plots from :mod:`dlcourse.plots`, and the
book's checked comparisons from :mod:`dlcourse.claims` (``dlcourse.claim``, ``dlcourse.beats``).
"""

from dlcourse import claims, data, plots
from dlcourse.claims import beats, claim, repeat, spread
from dlcourse.device import DeviceInfo, device_info, setup
from dlcourse.grading import grading_mode
from dlcourse.seeding import seed_everything
from dlcourse.selfcheck import check, use_assignment

__all__ = ["DeviceInfo", "beats", "check", "claim", "claims", "data", "repeat", "spread", "plots", "device_info", "grading_mode", "seed_everything",
           "setup", "use_assignment"]
__version__ = "0.1.0"
