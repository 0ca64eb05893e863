"""attacker."""
