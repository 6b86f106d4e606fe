"""The SD Host Controller model: the standard SDHCI register set (HCS v3.00).

``registers`` holds the declarative register/field table and the bit values shared with
the host driver; ``controller`` the register file and IRQ line around the command circuit
(``engine``), the data circuit (``datapath``) and the slot (``slot``).
"""

from sdmodel.sdhci.controller import SdhciController
from sdmodel.sdhci.memory import HostMemory, HostMemoryError

__all__ = ["SdhciController", "HostMemory", "HostMemoryError"]
