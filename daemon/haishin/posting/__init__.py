"""Posts to `<slug>@`: who may send, the 第3条 basic requirements, approval and holds."""
