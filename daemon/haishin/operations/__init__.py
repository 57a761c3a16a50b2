"""Running the service year-round (第4条, 第8条, 第9条): notices, backups, status."""
