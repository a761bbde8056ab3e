"""The standing hostile-world suite: misbehaving SSH servers on loopback, kills, random input (issue 16)."""
