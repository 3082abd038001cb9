# Approval policies, chains and signatures arrive with the approvals issue.
