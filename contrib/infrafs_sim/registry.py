"""The simulated providers. Their order is that of the command line's port
options, the ports file, the start-up lines and the demo config. A new
provider's class is added here."""

from .deployhq import DeployHQ
from .dokploy import Dokploy
from .heo import Heo
from .hostatlas import HostAtlas
from .hostup import HostUp

PROVIDER_CLASSES = (HostUp, Heo, Dokploy, DeployHQ, HostAtlas)
