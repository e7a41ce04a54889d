"""HTTP controllers of the telemetry service, one module per URL area: ``/radio/*`` (the radio proxy), ``/car/*``
(car tasks), ``/stats/*`` (the statistics read model) and the two routes the original's statistics mounted
elsewhere, ``/user/log`` and ``/link/list``."""

from telemetry.routes.car import CarController, CarTaskController
from telemetry.routes.link import LinkListController
from telemetry.routes.radio import RadioController
from telemetry.routes.stats import StatsController
from telemetry.routes.user import UserLogController

CONTROLLERS = [
    RadioController,
    CarController,
    CarTaskController,
    StatsController,
    UserLogController,
    LinkListController,
]
