"""Multi-task Soft Actor-Critic."""
