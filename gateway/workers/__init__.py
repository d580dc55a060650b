"""Several worker processes on one host: ``afgw run --workers N``.

``supervisor`` starts and keeps the workers; ``role`` makes one configuration into a worker's (shared
ports, its own file names and broker client id) and says which configurations may run as several.
"""

from gateway.workers.role import as_worker, check_workers
from gateway.workers.supervisor import Supervisor

__all__ = ["Supervisor", "as_worker", "check_workers"]
