"""Publishing a build: the dataset card, the HTML report with plots, and the push to the Hub."""
