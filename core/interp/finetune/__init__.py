"""Fine-tuning and what it changes: LoRA, IA3 and full fine-tuning on a private copy, the weight
and behaviour differences, forgetting of earlier skills, and adapter files.
"""
