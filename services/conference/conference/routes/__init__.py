"""HTTP controllers of the conference service, one module per URL area."""

from conference.routes.rooms import RoomController

CONTROLLERS = [RoomController]
