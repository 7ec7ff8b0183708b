# Expect: passes on esp32; fails on esp8266 (no esp32 module, no partition table).
from esp32 import Partition

running = Partition(Partition.RUNNING)
print(running.info()[4], running.get_next_update().info()[4])
Partition.mark_app_valid_cancel_rollback()
