"""The cloud API's request/response shapes for the headless task route: errors, results, async jobs, webhooks."""
