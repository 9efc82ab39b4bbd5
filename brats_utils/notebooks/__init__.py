"""What the numbered notebooks share, and their headless runs with papermill."""
