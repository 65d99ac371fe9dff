"""Layer 3, recruitment: from the contact base to the respondent pool (`invite`,
`respondents`). Imports only from `core` and `inputs`.
"""
