"""HTTP controllers of the auth service, one module per URL area."""

from auth.routes.auth import AuthController

CONTROLLERS = [AuthController]
