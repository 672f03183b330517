"""The eight components of the production agent, each in its own module.

=====================  ==============================================================
Permissions Gate       :mod:`agentlab.components.permissions`
Cost Controller        :mod:`agentlab.components.cost`
Memory Manager         :mod:`agentlab.components.memory`
Planner                :mod:`agentlab.components.planner`
Tool Router            :mod:`agentlab.components.router`
Execution Sandbox      :mod:`agentlab.components.sandbox`
Evaluator              :mod:`agentlab.components.evaluator`
Recovery Handler       :mod:`agentlab.components.recovery`
=====================  ==============================================================
"""
