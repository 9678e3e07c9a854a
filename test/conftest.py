"""Suite-wide settings: DDS stays on loopback, one domain id per run, and bounded CPU threads."""

import os
import random

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
# A distinct domain per test run keeps parallel runs on one machine apart (valid ids: 0..101).
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 101)))
