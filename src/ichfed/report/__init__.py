"""What people read: console tables now, the study's HTML report later."""
