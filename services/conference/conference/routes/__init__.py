"""HTTP controllers of the conference service, one module per URL area."""

from conference.routes.cases import CaseController
from conference.routes.chat import ChatController
from conference.routes.notifications import NotificationController
from conference.routes.rooms import RoomController, TestController
from conference.routes.users import UserController

CONTROLLERS = [RoomController, UserController, TestController, ChatController, CaseController, NotificationController]
